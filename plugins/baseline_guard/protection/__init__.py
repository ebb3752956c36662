"""Protection state of the environments: restore drills and what is drifting. No Airflow import.

:mod:`.drill` restores a backup into a scratch database and proves it restorable; :mod:`.drill_records`
keeps each drill's result in S3 beside the backups; :mod:`.state` collects, per environment, the
drift from production, what waits for a person, the last backup and the last proven restore;
:mod:`.check_alerts` decides when a business-check outcome is worth a message (once per change);
:mod:`.patrol_incidents` turns each patrol's findings into incident transitions (down, still down, recovered).
"""
