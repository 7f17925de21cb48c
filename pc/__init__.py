"""The PC's parts for the main loop: the counterpart of firmware/ on CPython."""
