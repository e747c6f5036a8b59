"""The run engine, its event sinks, the command line and configuration."""
