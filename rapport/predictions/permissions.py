from rapport.tenancy.permissions import ALL_ROLES, Role, permission_register

permission_register(
    code="models.read",
    description="See churn risk, lifetime value, model metrics and churn drivers",
    roles=ALL_ROLES,
)
permission_register(
    code="models.manage",
    description="Train and score models, change what counts as churn",
    roles={Role.ADMIN, Role.ANALYST, Role.MARKETER},
)
