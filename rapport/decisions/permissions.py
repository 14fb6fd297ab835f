from rapport.tenancy.permissions import ALL_ROLES, permission_register

permission_register(
    code="decisions.decide",
    description="Ask for a customer's next best action and record what they answered",
    roles=ALL_ROLES,
)
