"""Identity: OAuth login, JWT verification against JWKS, token storage."""
