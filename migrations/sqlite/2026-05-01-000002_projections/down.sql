DROP TABLE projection_cursor;
DROP TABLE supply_by_height;
DROP TABLE wallet_history;
DROP TABLE wallets;
