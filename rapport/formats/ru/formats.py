# Russian dates with the day first (31.01.2027 14:05); the rest of Django's Russian
# formats apply (a non-breaking space between thousands, a decimal comma).
SHORT_DATE_FORMAT = "d.m.Y"
SHORT_DATETIME_FORMAT = "d.m.Y H:i"
DATETIME_FORMAT = "d.m.Y H:i:s"
