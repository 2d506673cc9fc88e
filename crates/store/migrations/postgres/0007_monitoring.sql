-- Monitoring: activity in a time window (the last hour or day) per organization,
-- read by the monitoring endpoints without scanning the whole decision trail or
-- every email. Kept in step with the other backend's 0007_monitoring.sql.
CREATE INDEX message_decisions_by_time ON message_decisions (org_id, updated_at);
CREATE INDEX emails_by_status_time ON emails (org_id, status, updated_at);
