"""The bundled example goals: travel, research (and its LangGraph variant), support,
purchase, the teams built from them, and clock-and-git (MCP tools).

They are a package of their own: they load through the `onward.goals` entry points
(pyproject), the way any user's goals do, and bring their own ledger tables, settings
(`settings.py`: Stripe, SMTP, the saga SKU), pay page (`API_ROUTERS`), commands
(`CLI_COMMANDS`: `onward ledger`, `onward chaos`) and data. Nothing in the core
imports them (an import contract).
"""
