"""PMO digests: the window's figures as HTML e-mail with charts and chat Markdown (ACTIONS.md "Digests")."""
