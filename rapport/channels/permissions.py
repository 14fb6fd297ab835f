from rapport.tenancy.permissions import ALL_ROLES, Role, permission_register

permission_register(
    code="messages.read",
    description="See messages, broadcasts and their results",
    roles=ALL_ROLES,
)
permission_register(
    code="messages.send",
    description="Send a message to a customer, and send or cancel broadcasts",
    roles={Role.ADMIN, Role.MARKETER},
)
permission_register(
    code="templates.write",
    description="Write message templates and broadcasts",
    roles={Role.ADMIN, Role.MARKETER},
)
permission_register(
    code="channels.manage",
    description="Set the workspace's sender, mail transport and contact policy",
    roles={Role.ADMIN},
)
