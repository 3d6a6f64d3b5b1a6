"""One module per detector kind; `registry` maps a rule kind to its detector class."""
