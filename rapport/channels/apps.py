from django.apps import AppConfig


class ChannelsConfig(AppConfig):
    name = "rapport.channels"
    label = "channels"
    verbose_name = "Channels: messages, templates, broadcasts"

    def ready(self) -> None:
        from rapport.channels import (
            email,  # noqa: F401 - registers the email transport
            esp,  # noqa: F401 - receives the providers' tracking events
            permissions,  # noqa: F401 - registers permissions
            sms,  # noqa: F401 - registers the SMS transport
            timeline,
            webhook,  # noqa: F401 - registers the webhook transport
        )
        from rapport.profiles.selectors import timeline_source_register
        from rapport.profiles.timeline_sentences import sentence_register

        timeline_source_register(kinds=("event",), entries=timeline.message_entries)
        sentence_register(data="message", sentence=timeline.message_sentence)
