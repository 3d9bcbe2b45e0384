-- Who created each API key: the creating credential's subject (an API key's id, a JWT's `sub`),
-- so an operator who revokes a leaked key can find the keys it minted. NULL: the bootstrap key
-- and keys created before this column existed.
ALTER TABLE api_keys ADD COLUMN created_by text;
