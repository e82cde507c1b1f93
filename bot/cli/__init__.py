"""The bot's commands: `slam bot slack|discord|web|console` (`run`), `slam web invite|revoke`
(`web`) and `slam schedule list|run` (`schedule`).
"""
