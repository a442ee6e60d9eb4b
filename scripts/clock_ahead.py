"""Print the moments the unit lane is run at again, with the whole process's clock moved there by
faketime (TESTING "Time"; `make test-unit-ahead`). Both are computed from today, so the guard stays
years ahead whatever day CI runs on, and both are 23:30 UTC: already the next day, month and year in
Asia/Jakarta (UTC+7), the merchants' usual zone, so "today" differs between UTC and the merchant.

- the first 29 February at least four years away: a leap day, where "the same day next year" and
  "one month later" have no plain answer and February's last day moves;
- the 31 December after it: a year end, where MM/YY expiries, month lists and yearly schedules wrap.
"""

from __future__ import annotations

import calendar
from datetime import date

year = date.today().year + 4
while not calendar.isleap(year):
    year += 1
print(f"{year}-02-29 23:30:00 UTC")
print(f"{year}-12-31 23:30:00 UTC")
