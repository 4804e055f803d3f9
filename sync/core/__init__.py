"""The pure core: stages, what we remember of a shop order, typed settings. No I/O here."""
