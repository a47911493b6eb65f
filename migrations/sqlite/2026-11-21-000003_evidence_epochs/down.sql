DROP TABLE epoch_ends;
DROP TABLE evidence;
