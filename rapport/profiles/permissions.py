from rapport.tenancy.permissions import ALL_ROLES, Role, permission_register

permission_register(
    code="profiles.read",
    description="Find customers and see their profile and timeline (masked without pii.read)",
    roles=ALL_ROLES,
)
permission_register(
    code="profiles.merge",
    description="Merge two profiles of one customer, and undo merges",
    roles={Role.ADMIN, Role.MARKETER, Role.SALES, Role.AGENT},
)
permission_register(
    code="profiles.erase",
    description="Erase a customer's personal data (recorded in the audit log)",
    roles={Role.ADMIN},
)
permission_register(
    code="profiles.consent.manage",
    description="Record a customer's consent (a call, a signed form)",
    roles={Role.ADMIN, Role.MARKETER, Role.SALES, Role.AGENT},
)
permission_register(
    code="views.share",
    description="Share saved list views with the workspace, and change or delete shared ones",
    roles={Role.ADMIN, Role.MARKETER, Role.ANALYST, Role.SALES},
)
# Those who talk to customers keep their details right, as in any CRM; analysts read.
# Without pii.read (agents) the personal fields stay out of reach (masked, not editable).
permission_register(
    code="profiles.write",
    description="Edit a customer's traits (recorded on their timeline and in the audit log)",
    roles={Role.ADMIN, Role.MARKETER, Role.SALES, Role.AGENT},
)
