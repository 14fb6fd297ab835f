from rapport.tenancy.permissions import ALL_ROLES, Role, permission_register

permission_register(
    code="events.read",
    description="Read stored events (emails and phones masked without pii.read)",
    roles=ALL_ROLES,
)
permission_register(
    code="events.quarantine.read",
    description="Read rejected events and why they were rejected",
    roles={Role.ADMIN, Role.MARKETER, Role.ANALYST},
)
permission_register(
    code="imports.manage",
    description="Import customers and events from files",
    roles={Role.ADMIN, Role.MARKETER},
)
permission_register(
    code="pipeline.read",
    description="See how far each consumer of the event pipeline is, and its errors",
    roles={Role.ADMIN, Role.MARKETER, Role.ANALYST},
)
permission_register(
    code="pipeline.manage",
    description="Retry parked pipeline work and replay events through a consumer",
    roles={Role.ADMIN},
)
