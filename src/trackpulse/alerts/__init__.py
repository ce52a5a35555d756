"""Alert rules over the figures and the ledger of their episodes (ACTIONS.md "Alert rules")."""
