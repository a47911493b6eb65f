DROP TABLE bank_payment_requests;
DROP TABLE bank_payments;
DROP TABLE bank_wallets;
DROP TABLE bank_customers;
-- Back to the roles of 000004; fails while a user has one of the newer roles.
ALTER TABLE cb_users DROP CONSTRAINT cb_users_role_known;
ALTER TABLE cb_users ADD CONSTRAINT cb_users_role_known
    CHECK (role IN ('cb_officer', 'cb_admin', 'regulator'));
