"""The ``alertwire`` command line: a thin layer over the library."""
