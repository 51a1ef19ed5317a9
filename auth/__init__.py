"""Identity and access: principals, password hashes, tokens, access policy, user sync."""
