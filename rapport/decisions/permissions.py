from rapport.tenancy.permissions import ALL_ROLES, Role, permission_register

permission_register(
    code="decisions.read",
    description="See the action catalogue, the decision settings and the reports",
    roles=ALL_ROLES,
)
permission_register(
    code="decisions.write",
    description="Create, edit and delete actions, and change the decision settings",
    roles={Role.ADMIN, Role.MARKETER},
)
permission_register(
    code="decisions.decide",
    description="Ask for a customer's next best action and record what they answered",
    roles=ALL_ROLES,
)
