DROP TABLE cb_approvals;
DROP TABLE cb_requests;
DROP TABLE cb_audit;
DROP TABLE cb_users;
