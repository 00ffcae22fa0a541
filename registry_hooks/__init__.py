"""Registry events -> desired deployments -> reconciled deployments (see DESIGN.md).

The controller arrives with the registry-hooks issue; this package exists so that the
distribution's layout matches the design card from the first release.
"""
