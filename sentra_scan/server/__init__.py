"""`sentra serve` (the optional `server` extra): ciphertext storage for teams."""
