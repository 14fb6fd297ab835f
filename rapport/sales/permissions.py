from rapport.tenancy.permissions import ALL_ROLES, Role, permission_register

permission_register(
    code="sales.read",
    description="See pipelines, deals, tasks, notes and owners",
    roles=ALL_ROLES,
)
permission_register(
    code="sales.write",
    description="Create, edit and move deals, and assign owners",
    roles={Role.ADMIN, Role.SALES},
)
permission_register(
    code="sales.configure",
    description="Create and change pipelines and their stages",
    roles={Role.ADMIN},
)
permission_register(
    code="activities.write",
    description="Write notes, log calls and meetings, and create and complete tasks",
    roles={Role.ADMIN, Role.MARKETER, Role.SALES, Role.AGENT},
)
