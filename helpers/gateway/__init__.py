"""The MaaS gateway: LiteLLM in front of the models, our keys and ledger in PostgreSQL.

    postgres  a private PostgreSQL cluster (generated port and password)
    store     plans, users, applications (hashed keys) and the usage ledger
    proxy     the LiteLLM proxy process and its config
    plugin    runs inside LiteLLM: key check, model access, budgets, ledger rows
    portal    the small self-service and admin HTTP API
    web       the same portal as web pages (/portal/ui): pages (templates, usage charts), webauth (sign-in,
              sessions, CSRF, the oauth-proxy's headers), portal_data (what the pages show), charts (SVG)

Only ``plugin`` imports LiteLLM; it runs in the gateway's own venv.
"""
