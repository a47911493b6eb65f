DROP TABLE cb_approvals;
DROP TABLE cb_requests;
DROP TABLE cb_audit;
DROP FUNCTION cb_audit_append_only();
DROP TABLE cb_users;
