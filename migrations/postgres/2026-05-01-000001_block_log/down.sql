DROP TABLE snapshots;
DROP TABLE blocks;
