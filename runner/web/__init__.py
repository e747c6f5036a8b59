"""The laboratory's web front: a JSON REST API over the records (orders, reports, complaints, audit)."""
