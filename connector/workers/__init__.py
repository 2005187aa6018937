"""Background workers, always driven from persisted rows so a restart resumes where a crash stopped."""
