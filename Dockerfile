# Production image: gunicorn + whitenoise for web, the same image for the Celery worker and beat.
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 VAR_DIR=/var/lib/billing
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN useradd --system --home /app billing && mkdir -p $VAR_DIR && chown billing $VAR_DIR
USER billing
EXPOSE 8000
CMD ["gunicorn", "billing_bo.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--threads", "4", "--limit-request-line", "4094", "--limit-request-fields", "50", "--limit-request-field_size", "8190", "--access-logfile", "-"]
