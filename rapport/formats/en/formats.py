# English dates as the UI has always written them (ISO order, 24-hour clock); the rest
# of Django's English formats apply. Templates use the format names, never a pattern.
SHORT_DATE_FORMAT = "Y-m-d"
SHORT_DATETIME_FORMAT = "Y-m-d H:i"
DATETIME_FORMAT = "Y-m-d H:i:s"
