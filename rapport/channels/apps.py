from django.apps import AppConfig


class ChannelsConfig(AppConfig):
    name = "rapport.channels"
    label = "channels"
    verbose_name = "Channels: messages, templates, broadcasts"

    def ready(self) -> None:
        from rapport.channels import (
            email,  # noqa: F401 - registers the email transport
            esp,  # noqa: F401 - receives the providers' tracking events
            inapp,  # noqa: F401 - registers the in-app transport
            permissions,  # noqa: F401 - registers permissions
            push,  # noqa: F401 - registers the web push transport
            sms,  # noqa: F401 - registers the SMS transport
            timeline,
            webhook,  # noqa: F401 - registers the webhook transport
        )
        from rapport.channels.services import messages_erase
        from rapport.identity.services import erasure_hook_register
        from rapport.profiles.selectors import timeline_source_register
        from rapport.profiles.timeline_sentences import sentence_register

        timeline_source_register(kinds=("event",), entries=timeline.message_entries)
        erasure_hook_register(name="channels.messages", hook=messages_erase)
        sentence_register(data="message", sentence=timeline.message_sentence)
        for name, sentence in timeline.EVENT_SENTENCES.items():
            sentence_register(event=name, sentence=sentence)
