-- Key rotation: a rotated key points at its replacement and keeps working until its
-- expires_at (the grace period); the admin server then marks it revoked.
ALTER TABLE access_keys ADD COLUMN replaced_by UUID REFERENCES access_keys (id) ON DELETE SET NULL;
CREATE INDEX access_keys_rotating_idx ON access_keys (expires_at) WHERE replaced_by IS NOT NULL AND status = 'active';
CREATE INDEX audit_log_target_idx ON audit_log (target_id, at);
