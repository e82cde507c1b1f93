"""Chat adapters (Slack, Discord, console), the transport-free dispatcher, commands, scheduler."""
