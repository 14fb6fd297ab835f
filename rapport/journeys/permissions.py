from rapport.tenancy.permissions import ALL_ROLES, Role, permission_register

permission_register(
    code="journeys.read",
    description="See journeys, their steps, enrolments and results",
    roles=ALL_ROLES,
)
permission_register(
    code="journeys.write",
    description="Create, edit, start, pause and stop journeys, and enrol customers",
    roles={Role.ADMIN, Role.MARKETER},
)
