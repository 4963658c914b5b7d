"""The local sandbox: a PagerDuty + BigPanda stand-in on loopback."""
