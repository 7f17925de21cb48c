# Kept empty on purpose: boot.py runs before the REPL can be reached, so a
# mistake here could lock mpremote out. Start-up is in main.py.
