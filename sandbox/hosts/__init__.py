"""Docker-based SSH hosts for the sandbox: the host image's recipe and a helper to run hosts."""
