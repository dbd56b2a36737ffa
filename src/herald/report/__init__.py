"""The daily statistics email: what it says, how it is mailed, and the job that sends it once a day."""
