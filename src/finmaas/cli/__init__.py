"""The ``finmaas`` command line."""
