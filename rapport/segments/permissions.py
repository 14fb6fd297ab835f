from rapport.tenancy.permissions import ALL_ROLES, Role, permission_register

permission_register(
    code="segments.read",
    description="See segments, their members and history, RFM cells and lifecycle stages",
    roles=ALL_ROLES,
)
permission_register(
    code="segments.manage",
    description="Create, change, refresh and delete segments; recompute RFM and lifecycle",
    roles={Role.ADMIN, Role.MARKETER, Role.ANALYST},
)
permission_register(
    code="segments.export",
    description="Export a segment's members (CSV, or hashed for ad platforms); audited",
    roles={Role.ADMIN, Role.MARKETER},
)
permission_register(
    code="lifecycle.manage",
    description="Rename lifecycle stages and define sub-stages",
    roles={Role.ADMIN, Role.MARKETER},
)
