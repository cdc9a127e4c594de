"""Real peers for the black-box tests and the bench: a private Postfix
instance and smtp-sink (postfix.py)."""
