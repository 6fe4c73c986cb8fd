-- One database per Dibao service (DESIGN §3.1: each service owns its database).
-- Run once by the postgres image on an empty data volume
-- (/docker-entrypoint-initdb.d), as POSTGRES_USER, who then owns them.
-- Keep in step with DB_URIS in config.yml and the DIBAO_*_DB_URI variables in
-- docker-compose.yml (tests/test_compose.py checks both).
CREATE DATABASE intake;
CREATE DATABASE review;
CREATE DATABASE payments;
CREATE DATABASE audit;
CREATE DATABASE notify;
CREATE DATABASE identity;
CREATE DATABASE verification;
