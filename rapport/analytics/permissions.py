from rapport.tenancy.permissions import ALL_ROLES, Role, permission_register

permission_register(
    code="analytics.read",
    description="See customer KPIs, the funnel, cohorts and dashboards, and export them",
    roles=ALL_ROLES,
)
permission_register(
    code="analytics.manage",
    description="Change what the KPIs count (time zone, survey, refund and message events)",
    roles={Role.ADMIN, Role.MARKETER, Role.ANALYST},
)
