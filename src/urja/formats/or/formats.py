# One date format on every page (issue 15): dd-mm-yyyy, times in IST (settings.TIME_ZONE), 24 hours.
DATE_FORMAT = SHORT_DATE_FORMAT = "d-m-Y"
DATETIME_FORMAT = SHORT_DATETIME_FORMAT = "d-m-Y H:i"
TIME_FORMAT = "H:i"
MONTH_DAY_FORMAT = "d-m"
YEAR_MONTH_FORMAT = "m-Y"
DECIMAL_SEPARATOR = "."
THOUSAND_SEPARATOR = ","
NUMBER_GROUPING = (3, 2, 0)  # Indian grouping: 1,23,45,678
