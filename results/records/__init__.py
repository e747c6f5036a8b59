"""The lab's records: orders and their life cycle, accounts, equipment register, audit trail, service levels, survey."""
