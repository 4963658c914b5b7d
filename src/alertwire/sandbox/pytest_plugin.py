"""pytest plugin (entry point ``alertwire``): the ``alertwire_sandbox`` fixture."""
