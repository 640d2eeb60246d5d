-- Palisade's multi-tenant demo: every table carries tenant_id, row-level security is enabled and
-- forced, and every policy reads the tenant from the claims Palisade sets for each transaction:
--   current_setting('request.jwt.claims', true)::jsonb ->> 'tenant_id'
-- With no claims, an empty claim, or another tenant's claim, a query sees zero rows.
--
-- Run as a superuser in the target database:  psql -v app_password="'…'" -f docker/demo.sql
\set ON_ERROR_STOP on
\if :{?app_password}
\else
  \set app_password '\'palisade-demo\''
\endif

BEGIN;
SET LOCAL client_min_messages = warning;

-- Palisade's own role: it owns nothing, can only read, and is subject to row-level security.
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'palisade_app') THEN
    CREATE ROLE palisade_app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
  END IF;
END $$;
ALTER ROLE palisade_app PASSWORD :app_password;

CREATE TABLE IF NOT EXISTS customers (
  tenant_id text NOT NULL,
  id        int  NOT NULL,
  name      text NOT NULL,
  email     text NOT NULL,
  region    text NOT NULL,
  PRIMARY KEY (tenant_id, id)
);

CREATE TABLE IF NOT EXISTS orders (
  tenant_id   text    NOT NULL,
  id          int     NOT NULL,
  customer_id int     NOT NULL,
  amount      numeric NOT NULL,
  placed_at   timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, id),
  FOREIGN KEY (tenant_id, customer_id) REFERENCES customers (tenant_id, id)
);

CREATE TABLE IF NOT EXISTS invoices (
  tenant_id text    NOT NULL,
  id        int     NOT NULL,
  order_id  int     NOT NULL,
  paid      boolean NOT NULL,
  PRIMARY KEY (tenant_id, id),
  FOREIGN KEY (tenant_id, order_id) REFERENCES orders (tenant_id, id)
);

TRUNCATE invoices, orders, customers;

INSERT INTO customers
SELECT t.tenant, c, t.tenant || ' customer ' || c, 'c' || c || '@' || t.tenant || '.example', (ARRAY['north','south','east','west'])[c % 4 + 1]
FROM (VALUES ('acme'), ('globex')) AS t(tenant), generate_series(1, 20) AS c;

-- acme gets 120 orders, globex 80, so counts tell the tenants apart.
INSERT INTO orders
SELECT t.tenant, o, (o % 20) + 1, (o * 7 % 500) + 10, timestamptz '2026-01-01' + o * interval '1 day'
FROM (VALUES ('acme', 120), ('globex', 80)) AS t(tenant, n), generate_series(1, n) AS o;

INSERT INTO invoices
SELECT tenant_id, id, id, id % 3 <> 0 FROM orders;

-- The claim, read once; NULL (so no rows) when there is none or it is empty.
CREATE OR REPLACE FUNCTION public.palisade_tenant() RETURNS text
  LANGUAGE sql STABLE PARALLEL SAFE
  AS $$ SELECT nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'tenant_id' $$;

DO $$
DECLARE relation text;
BEGIN
  FOREACH relation IN ARRAY ARRAY['customers', 'orders', 'invoices'] LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', relation);
    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', relation);
    EXECUTE format('DROP POLICY IF EXISTS tenant_isolation ON %I', relation);
    EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = public.palisade_tenant())', relation);
  END LOOP;
END $$;

-- A view that runs with the querying role's rights, so row-level security still applies.
CREATE OR REPLACE VIEW order_totals WITH (security_invoker = true) AS
  SELECT c.tenant_id, c.name AS customer, count(o.id) AS orders, coalesce(sum(o.amount), 0) AS total
  FROM customers c LEFT JOIN orders o ON o.tenant_id = c.tenant_id AND o.customer_id = c.id
  GROUP BY c.tenant_id, c.name;

REVOKE ALL ON ALL TABLES IN SCHEMA public FROM palisade_app;
GRANT USAGE ON SCHEMA public TO palisade_app;
GRANT SELECT ON customers, orders, invoices, order_totals TO palisade_app;
GRANT EXECUTE ON FUNCTION public.palisade_tenant() TO palisade_app;

COMMIT;
