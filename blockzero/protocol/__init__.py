"""Pure rules every node computes alike. Nothing here does I/O."""
